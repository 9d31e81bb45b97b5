"""HubSpot (CRM API v3): a batched destination that upserts contacts by e-mail."""
