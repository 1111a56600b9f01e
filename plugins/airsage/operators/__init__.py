"""airsage operators (one concern per module, like the amazon provider)."""
