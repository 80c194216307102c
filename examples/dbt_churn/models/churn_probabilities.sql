-- predict_proba returns a MAP(VARCHAR, DOUBLE) from class label to probability; indexing
-- it by a label gives a DOUBLE.
select
    c.customer_id,
    predict_proba('churn@prod', c)['yes'] as p_churn,
    predict_proba('churn@prod', c) as probabilities
from {{ ref('customers') }} c
