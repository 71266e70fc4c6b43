"""Cloud Function entry points (Google Cloud runtime).

Empty until the Cloud Functions issue lands: the embedded server (`cachebash serve`) is the
complete product today. Each function added here stays a thin target over the shared services.
"""
