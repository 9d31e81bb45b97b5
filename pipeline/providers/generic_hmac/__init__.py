"""A generic HMAC source: any sender signing its body with a shared secret, id and type found where
the config says.
"""
