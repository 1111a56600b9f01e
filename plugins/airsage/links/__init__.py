"""airsage links (one concern per module, like the amazon provider)."""
