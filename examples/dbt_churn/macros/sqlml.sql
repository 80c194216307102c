{#-
  Refuse to create a view that calls sqlml's predict() or predict_proba(): the view would
  store the call, and the functions exist only on connections with the sqlml.dbt plugin,
  so nothing else could read it. dbt looks for adapter macros in the root project first,
  so this replaces dbt-duckdb's duckdb__create_view_as (whose body follows the check).
-#}
{% macro duckdb__create_view_as(relation, sql) -%}
  {%- if modules.re.search('(?i)(^|[^a-z0-9_."])predict(_proba)?[ \t\r\n]*[(]', sql) -%}
    {{ exceptions.raise_compiler_error(
        "Model '" ~ model.name ~ "' calls sqlml's predict() but is materialized as a view: "
        ~ "a view stores the call, and predict() exists only on connections with the "
        ~ "sqlml.dbt plugin, so nothing else could read it. Use "
        ~ "{{ config(materialized='table') }} (or 'incremental') for this model."
    ) }}
  {%- endif -%}
  {% set contract_config = config.get('contract') %}
  {% if contract_config.enforced %}
    {{ get_assert_columns_equivalent(sql) }}
  {%- endif %}
  {%- set sql_header = config.get('sql_header', none) -%}

  {{ sql_header if sql_header is not none }}
  create view {{ relation }} as (
    {{ sql }}
  );
{%- endmacro %}
