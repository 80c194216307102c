-- Scores every customer. predict('model', c) takes the row as a struct: features bind by
-- column name, extra columns (customer_id, churned) are ignored. It returns a VARIANT, so
-- each call is cast to the model's type for a typed column.
select
    c.customer_id,
    c.plan,
    predict('churn@prod', c)::varchar as will_churn,         -- the deployed version
    predict('churn@1', c)::varchar as will_churn_baseline,   -- version 1 (logistic)
    predict('churn', c)::varchar as will_churn_latest,       -- the latest version
    predict('spend', c)::double as expected_spend            -- a regression model
from {{ ref('customers') }} c
