{#-
  sqlml in dbt-duckdb: copy this file into your project's macros/. It needs the sqlml.dbt
  plugin in profiles.yml, which installs sqlml_rewrite() and sqlml_calls_predict() on
  dbt's connection. dbt looks for adapter macros in the root project first, so these
  replace dbt-duckdb's, and then hand over to them (dbt.<macro> is dbt-duckdb's own).
-#}

{#-
  Tables (and incremental models, whose temporary tables are made here too) get typed
  columns: each predict('m', c) is bound to the model's version and replaced by a function
  of the model's output type (VARCHAR, DOUBLE, BOOLEAN...), so no cast is needed. Without
  this macro predict() returns a VARIANT.
-#}
{% macro duckdb__create_table_as(temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none) -%}
  {%- if language == 'sql' and execute -%}
    {%- set compiled_code = sqlml_call('sqlml_rewrite', compiled_code) -%}
  {%- endif -%}
  {{ return(dbt.duckdb__create_table_as(temporary, relation, compiled_code, language,
                                        partitioned_by=partitioned_by, sorted_by=sorted_by)) }}
{%- endmacro %}

{#-
  Refuse to create a view that calls sqlml's predict() or predict_proba(): the view would
  store the call, and the functions exist only on connections with the sqlml.dbt plugin,
  so nothing else could read it. Mentions in strings and comments do not count.
-#}
{% macro duckdb__create_view_as(relation, sql) -%}
  {%- if execute and sqlml_call('sqlml_calls_predict', sql) -%}
    {{ exceptions.raise_compiler_error(
        "Model '" ~ model.name ~ "' calls sqlml's predict() but is materialized as a view: "
        ~ "a view stores the call, and predict() exists only on connections with the "
        ~ "sqlml.dbt plugin, so nothing else could read it. Use "
        ~ "{{ config(materialized='table') }} (or 'incremental') for this model."
    ) }}
  {%- endif -%}
  {{ return(dbt.duckdb__create_view_as(relation, sql)) }}
{%- endmacro %}

{#- The value of function(sql), run on dbt's connection; sql travels as a string literal. -#}
{% macro sqlml_call(function, sql) -%}
  {%- set literal = "'" ~ (sql | replace("'", "''")) ~ "'" -%}
  {{ return(run_query("select " ~ function ~ "(" ~ literal ~ ")").rows[0][0]) }}
{%- endmacro %}
