{#-
  sqlml models inlined as plain SQL, for dbt-postgres (PostgreSQL cannot run Python).

  `sqlml compile MODEL@N --dialect postgres --save` stores a model version compiled to one
  SQL expression in the catalog's table model_compiled. sqlml_predict() reads it back with
  plain SQL, when dbt runs the model, and inlines it in parentheses:

    {{ sqlml_predict('churn') }}                -- the latest version's label
    {{ sqlml_predict('churn@2') }}              -- version 2
    {{ sqlml_predict('churn@prod') }}           -- the version the alias points at now
    {{ sqlml_predict('churn', proba=true) }}    -- a binary model's positive-class probability

  The expression reads the model's features by column name from the FROM clause.
  The catalog must be in the warehouse database, in the schema of
  var('sqlml_catalog_schema') (default public). Copy this file into your macros/.
-#}

{% macro sqlml_predict(model, proba=false) -%}
  {#- At parse time there is no database to ask; dbt only needs the SQL's shape. -#}
  {%- if not execute -%}
    {{- return('null') -}}
  {%- endif -%}

  {%- set kind = 'proba' if proba else 'predict' -%}
  {%- set parts = model.split('@') -%}
  {%- set name = parts[0] -%}
  {%- set qualifier = parts[1] if parts | length == 2 else '' -%}
  {%- if name == '' or parts | length > 2 or (parts | length == 2 and qualifier == '') -%}
    {{ exceptions.raise_compiler_error(
        "sqlml_predict('" ~ model ~ "'): not a model reference; use name, name@version "
        ~ "or name@alias") }}
  {%- endif -%}
  {%- set latest = qualifier == '' or qualifier | lower == 'latest' -%}
  {%- set schema = var('sqlml_catalog_schema', 'public') -%}
  {%- set catalog = adapter.quote(schema) -%}

  {%- set found = run_query(
      "select to_regclass(" ~ sqlml_quote_literal(catalog ~ ".model_compiled") ~ ") is not null"
  ).columns[0].values()[0] -%}
  {%- if not found -%}
    {{ exceptions.raise_compiler_error(
        "sqlml_predict('" ~ model ~ "'): schema '" ~ schema ~ "' of this database has no "
        ~ "sqlml catalog with compiled models (table model_compiled). Run `sqlml migrate "
        ~ "--catalog <this database's URI>`, or set var('sqlml_catalog_schema') to the "
        ~ "catalog's schema") }}
  {%- endif -%}

  {%- set query -%}
    select m.name,
           v.version,
           v.task,
           jsonb_array_length(v.classes) as classes,
           c.expression,
           (select string_agg(name, ', ' order by name) from {{ catalog }}.models) as models,
           (select string_agg(version::text, ', ' order by version)
              from {{ catalog }}.model_versions where model = m.name) as versions,
           (select string_agg(alias || '=' || version::text, ', ' order by alias)
              from {{ catalog }}.model_aliases where model = m.name) as aliases
    from (select 1) as one
    left join {{ catalog }}.models m on m.name = {{ sqlml_quote_literal(name) }}
    left join {{ catalog }}.model_versions v
      on v.model = m.name
     and v.version = (
      {%- if latest %}
          select max(version) from {{ catalog }}.model_versions where model = m.name
      {%- elif qualifier.isdigit() %}
          {{ qualifier | int }}
      {%- else %}
          select version from {{ catalog }}.model_aliases
          where model = m.name and alias = {{ sqlml_quote_literal(qualifier) }}
      {%- endif %})
    left join {{ catalog }}.model_compiled c
      on c.model = v.model and c.version = v.version
     and c.dialect = 'postgres' and c.kind = '{{ kind }}'
  {%- endset -%}
  {%- set row = run_query(query).rows[0] -%}

  {%- set prefix = "sqlml_predict('" ~ model ~ "'" ~ (", proba=true" if proba else "") ~ "): " -%}
  {%- if row['name'] is none -%}
    {{ exceptions.raise_compiler_error(
        prefix ~ "model '" ~ name ~ "' does not exist; models in the catalog (schema '"
        ~ schema ~ "'): " ~ (row['models'] or 'none')) }}
  {%- elif row['version'] is none and latest -%}
    {{ exceptions.raise_compiler_error(prefix ~ "model '" ~ name ~ "' has no versions") }}
  {%- elif row['version'] is none and qualifier.isdigit() -%}
    {{ exceptions.raise_compiler_error(
        prefix ~ "model '" ~ name ~ "' has no version " ~ qualifier ~ "; its versions: "
        ~ (row['versions'] or 'none')) }}
  {%- elif row['version'] is none -%}
    {{ exceptions.raise_compiler_error(
        prefix ~ "model '" ~ name ~ "' has no alias '" ~ qualifier ~ "'; its aliases: "
        ~ (row['aliases'] or 'none')) }}
  {%- endif -%}

  {%- set version = row['version'] | int -%}
  {%- if proba and row['task'] != 'classification' -%}
    {{ exceptions.raise_compiler_error(
        prefix ~ "model '" ~ name ~ "' is a " ~ row['task'] ~ " model and has no class "
        ~ "probabilities; call sqlml_predict('" ~ model ~ "') without proba") }}
  {%- elif proba and row['classes'] > 2 -%}
    {{ exceptions.raise_compiler_error(
        prefix ~ "model '" ~ name ~ "' has " ~ (row['classes'] | int) ~ " classes; "
        ~ "proba=true inlines one expression, the positive class's probability of a binary "
        ~ "model. Select the per-class list from model_compiled yourself") }}
  {%- elif row['expression'] is none -%}
    {{ exceptions.raise_compiler_error(
        prefix ~ "model '" ~ name ~ "' version " ~ version ~ " is not compiled for "
        ~ "PostgreSQL yet. Run `sqlml compile " ~ name ~ "@" ~ version
        ~ " --dialect postgres" ~ (" --proba" if proba else "") ~ " --save` "
        ~ "(with --catalog pointing at this database), then run dbt again") }}
  {%- endif -%}

  {{- return('(' ~ row['expression'] ~ ')') -}}
{%- endmacro %}


{#- A SQL string literal of `value`. -#}
{% macro sqlml_quote_literal(value) -%}
  {{- return("'" ~ (value | string | replace("'", "''")) ~ "'") -}}
{%- endmacro %}
