"""airsage triggers (one concern per module, like the amazon provider)."""
