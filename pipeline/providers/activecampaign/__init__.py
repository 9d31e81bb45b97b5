"""ActiveCampaign (API v3): a webhook source and a destination (subscribe, tag, unsubscribe)."""
