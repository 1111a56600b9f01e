"""Exception types shared by the definition builder, the validator and the local runner."""


class AirsageError(Exception):
    """Base class of every error airsage raises on purpose."""


class InvalidInput(AirsageError):
    """Bad input from the user (config, parameters, definition JSON, data, URIs): CLI exit code 2."""


class ConfigError(InvalidInput):
    """A configuration field is missing or invalid; the message names the field and the problem."""


class DefinitionError(InvalidInput):
    """A pipeline definition JSON is malformed; the message names the step or reference."""


class StorageError(InvalidInput):
    """An S3/file URI or object key is invalid or escapes the object root."""
