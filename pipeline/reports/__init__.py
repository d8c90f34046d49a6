"""What users read: status, HTML report, dataset card, explain, export, hash-width table."""
