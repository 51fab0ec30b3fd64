"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class MnistlabError(Exception):
    """A problem the user can fix (bad name, bad file, bad flag); printed as one line, exit code 2."""


class TrainingDiverged(MnistlabError):
    """The loss became NaN/inf; the last good checkpoint is kept."""
