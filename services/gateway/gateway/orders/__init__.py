"""Payment orders: Qunzhu starts the payment (POST /api/v1/communities/{id}/checkout), the providers'
notifications find it again by its id, and a daily reconciliation compares it with the provider's records."""
