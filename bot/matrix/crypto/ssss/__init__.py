"""Server-side secret storage (SSSS), algorithm ``m.secret_storage.v1.aes-hmac-sha2``.

``types``: names and constants; ``util``: key derivation and AES-CTR; ``key``: the
recovery key and encrypting/decrypting one secret; ``machine``: storing and reading the
cross-signing secrets in account data.
"""
