"""Mixpanel (Ingestion API): a batched analytics destination, deduplicated by `$insert_id`."""
