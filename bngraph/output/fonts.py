"""Fonts for the Graphviz bundled in pygraphviz's wheel: its fontconfig reads bngraph's fonts.conf.

Why: that fontconfig (2.13) loads the system's ``/etc/fonts/fonts.conf`` and then, always,
scans its compiled-in template folder ``/usr/share/fontconfig/conf.avail``. On Debian and
Ubuntu that folder holds ``05-reset-dirs-sample.conf``, whose ``<reset-dirs>`` element 2.13
does not know, so the first layout of every run printed ``Fontconfig warning: … unknown
element "reset-dirs"``. Setting ``FONTCONFIG_FILE`` cannot silence it: fontconfig's own
initialisation (``FcInitLoadOwnConfig``) scans the template folder after loading whatever
file it was given. So bngraph does that initialisation itself: it builds a configuration
from the minimal ``fonts.conf`` beside this module and makes it current before Graphviz first
asks for a font; fontconfig then never runs its own, and never reads the template folder.

Nothing is done when pygraphviz uses a system Graphviz (no bundled fontconfig) or when the
user has chosen a configuration (``FONTCONFIG_FILE`` or ``FONTCONFIG_PATH`` set).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

FONTS_CONF = Path(__file__).with_name("fonts.conf")


class _Done:
    tried = False
    result: str | None = None  # the fonts.conf in use, or None


def bundled_fontconfig() -> Path | None:
    """The fontconfig library inside pygraphviz's wheel (``pygraphviz.libs/libfontconfig-….so``), if any."""
    import pygraphviz

    libs = Path(pygraphviz.__file__).resolve().parent.parent / "pygraphviz.libs"
    found = sorted(libs.glob("libfontconfig*.so*")) if libs.is_dir() else []
    return found[0] if found else None


def use_own_fonts_conf() -> str | None:
    """Make bngraph's fonts.conf the bundled fontconfig's configuration, once per process.

    Returns the path of the configuration in use, or None if the system's is kept.
    """
    if _Done.tried:
        return _Done.result
    _Done.tried = True
    if os.environ.get("FONTCONFIG_FILE") or os.environ.get("FONTCONFIG_PATH"):
        return None
    library = bundled_fontconfig()
    if library is None:
        return None
    try:
        fc = ctypes.CDLL(str(library))  # the same library pygraphviz loaded (same soname)
        fc.FcConfigCreate.restype = ctypes.c_void_p
        fc.FcConfigParseAndLoad.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        fc.FcConfigBuildFonts.argtypes = fc.FcConfigSetCurrent.argtypes = fc.FcConfigDestroy.argtypes = [ctypes.c_void_p]
        config = fc.FcConfigCreate()
        if not config:
            return None
        if not (fc.FcConfigParseAndLoad(config, os.fsencode(FONTS_CONF), 1) and fc.FcConfigBuildFonts(config)
                and fc.FcConfigSetCurrent(config)):
            fc.FcConfigDestroy(config)
            return None
        # not destroyed: it stays current for the life of the process (whether FcConfigSetCurrent
        # takes a reference of its own changed between fontconfig versions)
    except (OSError, AttributeError):  # not the library we expected: keep fontconfig's own start
        return None
    _Done.result = str(FONTS_CONF)
    return _Done.result
