"""Webchecker: serverless website-availability monitoring."""
