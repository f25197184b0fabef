"""Homework (作业): assignments, submissions, grades, scholarships."""
