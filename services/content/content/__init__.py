"""Content service: posts, schedules, guest sharing sessions, broadcasts to many groups."""
