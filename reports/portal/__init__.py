"""The reporting portal: each unit logs in and sees its own published deliveries.

One module per concern: ``store`` (the embedded SQLite database), ``identity`` (who
someone is: local passwords today, one interface so OIDC/SAML can replace them),
``sessions`` (server-side sessions and anti-forgery tokens), ``access_log`` (the
append-only log of every access), ``authorisation`` (which units a role may see),
``published`` (reading what the pipeline published in OUTPUT, never the warehouse),
``pages`` (the unit page, overviews, downloads), ``audit_round`` (the annual
commenting window), ``routes`` (the FastAPI application) and ``cli``.
"""
