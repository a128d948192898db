"""Lessons: the lesson tools (pure functions over the playbook) and each learner's practice and progress."""
