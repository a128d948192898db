"""A CRM export against the playbook: periods, funnel, KPIs, compliance, case studies, review, HTML report."""
