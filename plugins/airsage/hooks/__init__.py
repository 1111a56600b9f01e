"""airsage hooks (one concern per module, like the amazon provider)."""
