"""The one error the tracking wing raises at launch."""


class TrackingUnavailable(Exception):
    """The tracking server or store cannot be used; the message is one line naming it and why."""
