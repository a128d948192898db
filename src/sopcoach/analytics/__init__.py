"""Analytics: a CRM export against the playbook (periods, funnel, KPIs, compliance, case studies, the monthly review) and its HTML report."""
