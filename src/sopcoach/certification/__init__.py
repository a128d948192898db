"""Certification: the exam (draw, attempt states, recertification), scoring, certificates, results, item statistics."""
