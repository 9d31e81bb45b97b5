"""A generic HTTP destination: any endpoint, signed with Standard Webhooks (a Zapier/Make hook, a
creator's own service).
"""
