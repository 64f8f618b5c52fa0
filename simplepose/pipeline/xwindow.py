"""A plain X11 window for ``--show`` on Linux, drawn through libX11 with ``ctypes``.

Why not OpenCV's window: on Linux simplepose depends on ``opencv-python-headless``, the
wheel that imports on servers and in slim containers (the GUI wheel, ``opencv-python``,
needs ``libGL.so.1`` and fails to import where it is missing; and the two wheels install
the same ``cv2`` package, so they cannot both be installed). The headless wheel has no
window, so on Linux desktops the window comes from libX11 itself, which every X11 desktop
has (and Wayland desktops through XWayland). libX11 is loaded only when a window is
opened, so nothing changes where there is no display.

One window, one thread (the caller's): ``show`` letterboxes the BGR frame into the window's
current size and sends it with ``XPutImage``; ``q``, Esc or the window's close button end
it (``closed``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from simplepose.errors import InputError

_KEY_PRESS, _CLIENT_MESSAGE = 2, 33  # X event types
_KEY_PRESS_MASK, _STRUCTURE_NOTIFY_MASK, _EXPOSURE_MASK = 1 << 0, 1 << 17, 1 << 15
_Z_PIXMAP, _MSB_FIRST, _TRUE_COLOR = 2, 1, 4
_XK_Q, _XK_ESCAPE = 0x71, 0xFF1B
_EVENT_SIZE = 192  # sizeof(XEvent) on LP64: a union padded to 24 longs
_CLIENT_DATA_OFFSET = 56  # XClientMessageEvent.data.l[0] on LP64


class _Visual(ctypes.Structure):
    _fields_ = [
        ("ext_data", ctypes.c_void_p),
        ("visualid", ctypes.c_ulong),
        ("c_class", ctypes.c_int),
        ("red_mask", ctypes.c_ulong),
        ("green_mask", ctypes.c_ulong),
        ("blue_mask", ctypes.c_ulong),
        ("bits_per_rgb", ctypes.c_int),
        ("map_entries", ctypes.c_int),
    ]


_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_library: Any = None


def _on_x_error(display: int, event: int) -> int:
    # Xlib's default handler ends the process on any protocol error; a lost frame is better.
    return 0


_on_x_error_c = _ERROR_HANDLER(_on_x_error)


def _x11() -> Any:
    """libX11 with the signatures used here (loaded once)."""
    global _library
    if _library is not None:
        return _library
    name = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        lib = ctypes.CDLL(name)
    except OSError as error:
        raise InputError("no X11 library (libX11.so.6) on this machine") from error
    p, u, i, ul = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "XOpenDisplay": (p, [ctypes.c_char_p]),
        "XDefaultScreen": (i, [p]),
        "XRootWindow": (ul, [p, i]),
        "XDefaultVisual": (ctypes.POINTER(_Visual), [p, i]),
        "XDefaultDepth": (i, [p, i]),
        "XDisplayWidth": (i, [p, i]),
        "XDisplayHeight": (i, [p, i]),
        "XBlackPixel": (ul, [p, i]),
        "XImageByteOrder": (i, [p]),
        "XCreateSimpleWindow": (ul, [p, ul, i, i, u, u, u, ul, ul]),
        "XStoreName": (i, [p, ul, ctypes.c_char_p]),
        "XSelectInput": (i, [p, ul, ctypes.c_long]),
        "XInternAtom": (ul, [p, ctypes.c_char_p, i]),
        "XSetWMProtocols": (i, [p, ul, ctypes.POINTER(ul), i]),
        "XMapWindow": (i, [p, ul]),
        "XCreateGC": (p, [p, ul, ul, p]),
        "XCreateImage": (p, [p, ctypes.POINTER(_Visual), u, i, i, p, u, u, i, i]),
        "XPutImage": (i, [p, ul, p, p, i, i, i, i, u, u]),
        "XFree": (i, [p]),
        "XFlush": (i, [p]),
        "XPending": (i, [p]),
        "XNextEvent": (i, [p, p]),
        "XLookupKeysym": (ul, [p, i]),
        "XGetGeometry": (
            i,
            [p, ul, ctypes.POINTER(ul)] + [ctypes.POINTER(i)] * 2 + [ctypes.POINTER(u)] * 4,
        ),  # fmt: skip
        "XFreeGC": (i, [p, p]),
        "XDestroyWindow": (i, [p, ul]),
        "XCloseDisplay": (i, [p]),
        "XSetErrorHandler": (p, [_ERROR_HANDLER]),
    }
    for function, (restype, argtypes) in signatures.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    lib.XSetErrorHandler(_on_x_error_c)
    _library = lib
    return lib


class XWindow:
    """An X11 window that shows BGR frames.

    Args:
        title: window title.
        size: initial ``(width, height)``; ``None``: set by the first frame (at most 90 %
            of the screen).

    Raises:
        InputError: no libX11, no display to connect to, or a display without 24-bit
            true colour.
    """

    def __init__(self, title: str = "simplepose", size: tuple[int, int] | None = None) -> None:
        x = self._x = _x11()
        name = os.environ.get("DISPLAY", "")
        self._display = x.XOpenDisplay(None)
        if not self._display:
            raise InputError(f"cannot connect to the X display {name!r}")
        display = self._display
        screen = x.XDefaultScreen(display)
        self._visual = x.XDefaultVisual(display, screen)
        visual = self._visual.contents
        depth = x.XDefaultDepth(display, screen)
        masks = (visual.red_mask, visual.green_mask, visual.blue_mask)
        if visual.c_class != _TRUE_COLOR or depth not in (24, 32) or masks != (
            0xFF0000, 0xFF00, 0xFF,
        ):  # fmt: skip
            x.XCloseDisplay(display)
            raise InputError(f"the X display {name!r} is not 24-bit true colour")
        self._depth = depth
        self._msb_first = x.XImageByteOrder(display) == _MSB_FIRST
        self._screen_size = (x.XDisplayWidth(display, screen), x.XDisplayHeight(display, screen))
        self._title = title.encode()
        self._window = 0
        self._gc: Any = None
        self._size = size
        self._event = ctypes.create_string_buffer(_EVENT_SIZE)
        self._delete_atom = x.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        self.closed = False
        if size is not None:
            self._open(*size)

    def _open(self, width: int, height: int) -> None:
        x, display = self._x, self._display
        screen = x.XDefaultScreen(display)
        self._window = x.XCreateSimpleWindow(
            display, x.XRootWindow(display, screen), 0, 0, width, height, 0,
            x.XBlackPixel(display, screen), x.XBlackPixel(display, screen),
        )  # fmt: skip
        x.XStoreName(display, self._window, self._title)
        x.XSelectInput(display, self._window, _KEY_PRESS_MASK | _STRUCTURE_NOTIFY_MASK
                       | _EXPOSURE_MASK)  # fmt: skip
        atom = ctypes.c_ulong(self._delete_atom)
        x.XSetWMProtocols(display, self._window, ctypes.byref(atom), 1)
        self._gc = x.XCreateGC(display, self._window, 0, None)
        x.XMapWindow(display, self._window)
        x.XFlush(display)

    def _window_size(self) -> tuple[int, int]:
        root = ctypes.c_ulong()
        left, top = ctypes.c_int(), ctypes.c_int()
        width, height, border, depth = (ctypes.c_uint() for _ in range(4))
        self._x.XGetGeometry(self._display, self._window, ctypes.byref(root), ctypes.byref(left),
                             ctypes.byref(top), ctypes.byref(width), ctypes.byref(height),
                             ctypes.byref(border), ctypes.byref(depth))  # fmt: skip
        return max(1, width.value), max(1, height.value)

    def show(self, image: npt.NDArray[np.uint8]) -> None:
        """Draw a uint8 (H, W, 3) BGR frame, letterboxed to the window, and handle events."""
        if self.closed:
            return
        if not self._window:
            height, width = image.shape[:2]
            limit_w, limit_h = (int(0.9 * side) for side in self._screen_size)
            scale = min(1.0, limit_w / width, limit_h / height)
            self._open(max(1, round(width * scale)), max(1, round(height * scale)))
        self._handle_events()
        if self.closed:
            return
        canvas = self._fit(image, *self._window_size())
        pixels = np.ascontiguousarray(canvas[..., ::-1] if self._msb_first else canvas)
        height, width = pixels.shape[:2]
        x, display = self._x, self._display
        ximage = x.XCreateImage(display, self._visual, self._depth, _Z_PIXMAP, 0,
                                pixels.ctypes.data, width, height, 32, width * 4)  # fmt: skip
        if not ximage:
            return
        try:
            x.XPutImage(display, self._window, self._gc, ximage, 0, 0, 0, 0, width, height)
            x.XFlush(display)  # the request (with the pixels) is sent before they are freed
        finally:
            x.XFree(ximage)  # the struct only: the pixels belong to numpy

    @staticmethod
    def _fit(image: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
        """BGRX (H, W, 4) of the window's size: ``image`` scaled to fit, black bars."""
        h, w = image.shape[:2]
        scale = min(width / w, height / h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        if (new_w, new_h) != (w, h):
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=interpolation))
        canvas = np.zeros((height, width, 4), np.uint8)
        top, left = (height - new_h) // 2, (width - new_w) // 2
        canvas[top : top + new_h, left : left + new_w, :3] = image
        return canvas

    def _handle_events(self) -> None:
        x, display, event = self._x, self._display, self._event
        while x.XPending(display):
            x.XNextEvent(display, event)
            kind = ctypes.c_int.from_buffer(event).value
            if kind == _KEY_PRESS and x.XLookupKeysym(event, 0) in (_XK_Q, _XK_ESCAPE):
                self.closed = True
            elif kind == _CLIENT_MESSAGE:
                atom = ctypes.c_long.from_buffer(event, _CLIENT_DATA_OFFSET).value
                self.closed |= atom == self._delete_atom

    def close(self) -> None:
        """Destroy the window and disconnect. Idempotent."""
        if self._display:
            x = self._x
            if self._window:
                x.XFreeGC(self._display, self._gc)
                x.XDestroyWindow(self._display, self._window)
            x.XCloseDisplay(self._display)
            self._display = None
        self.closed = True
