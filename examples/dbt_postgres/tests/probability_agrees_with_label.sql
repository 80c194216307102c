-- A binary classifier predicts 'yes' exactly when the probability of 'yes' is above one
-- half; rows returned here are failures.
select customer_id, will_churn, p_churn
from {{ ref('churn_scores') }}
where p_churn < 0 or p_churn > 1
   or (will_churn = 'yes') <> (p_churn > 0.5)
