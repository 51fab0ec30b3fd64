"""What every benchmark records about where and from what it ran (shared by the scripts in this folder)."""
from mnistlab.runs import cpu_name, git_info

__all__ = ["cpu_name", "git_sha"]


def git_sha() -> str:
    """Short sha with a -dirty suffix when tracked files differ from HEAD; "unknown" outside a checkout."""
    g = git_info()
    return g["git_sha"][:7] + ("-dirty" if g["git_dirty"] else "") if g["git_sha"] else "unknown"
