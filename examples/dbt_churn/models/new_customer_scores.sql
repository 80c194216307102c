-- Scores customers as they sign up: the first run scores everyone, later runs only those
-- who signed up on or after the latest day already scored (unique_key replaces a customer
-- scored again). New rows go through a temporary table, typed like the first run's; with
-- on_schema_change='fail' a VARIANT there (macros/sqlml.sql missing) would stop the run.
{{ config(materialized='incremental', unique_key='customer_id', on_schema_change='fail') }}
select c.customer_id, c.signup_date, predict('churn@prod', c) as will_churn
from {{ ref('customers') }} c
{% if is_incremental() %}
where c.signup_date >= (select max(signup_date) from {{ this }})
{% endif %}
