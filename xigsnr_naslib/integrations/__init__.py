"""Bridges to other NAS frameworks (:mod:`.naslib`)."""
