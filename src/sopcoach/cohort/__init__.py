"""Onboarding a cohort: HR rosters, sign-in slips, certificate reminders and a demo cohort."""
