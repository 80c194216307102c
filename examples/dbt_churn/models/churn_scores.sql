-- Scores every customer. predict('model', c) takes the row as a struct: features bind by
-- column name, extra columns (customer_id, churned) are ignored. With macros/sqlml.sql in
-- the project each column has the model's type (VARCHAR labels, DOUBLE for the regression);
-- without it predict() returns a VARIANT, and a cast gives the type (as in will_churn_cast).
select
    c.customer_id,
    c.plan,
    predict('churn@prod', c) as will_churn,                 -- the deployed version
    predict('churn@1', c) as will_churn_baseline,           -- version 1 (logistic)
    predict('churn', c) as will_churn_latest,               -- the latest version
    predict('spend', c) as expected_spend,                  -- a regression model
    predict('churn@prod', c)::varchar as will_churn_cast    -- a cast works too
from {{ ref('customers') }} c
