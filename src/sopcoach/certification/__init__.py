"""Certification: the exam (draw, attempt state machine, recertification), scoring, certificates, results and item statistics."""
