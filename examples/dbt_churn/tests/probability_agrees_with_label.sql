-- A binary classifier predicts the class whose probability is above one half; rows
-- returned here are failures.
select s.customer_id, s.will_churn, p.p_churn
from {{ ref('churn_scores') }} s
join {{ ref('churn_probabilities') }} p using (customer_id)
where p.p_churn < 0 or p.p_churn > 1
   or (s.will_churn = 'yes') <> (p.p_churn > 0.5)
