-- Scores every customer inside PostgreSQL: sqlml_predict() inlines the churn model's
-- latest version, compiled to SQL by `sqlml compile --save`; it reads the features
-- (tenure_months, plan, ...) by column name, customer_id and churned are not features.
--
-- The compiled trees are deep CASE expressions that PostgreSQL's JIT compiles slowly
-- (for a 100-tree model, longer than the query itself), so the pre_hook turns JIT off for
-- this model's connection.
{{ config(materialized='table', pre_hook="set jit = off") }}

select
    customer_id,
    {{ sqlml_predict('churn') }} as will_churn,             -- the label: 'yes' or 'no'
    {{ sqlml_predict('churn', proba=true) }} as p_churn     -- the probability of 'yes'
from {{ ref('customers') }}
