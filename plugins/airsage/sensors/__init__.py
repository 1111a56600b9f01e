"""airsage sensors (one concern per module, like the amazon provider)."""
