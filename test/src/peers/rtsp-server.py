#!/usr/bin/python3
"""rtsp-server.py — an RTSP server for the end-to-end tests: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0 through python3-gst-1.0) serving one live test stream over RTP/UDP.

    rtsp-server.py ADDRESS PORT [MOUNT]

Serves `rtsp://ADDRESS:PORT/MOUNT` (default mount `test`): a 440 Hz tone from audiotestsrc,
8 kHz mono, G.711 mu-law (PCMU, RTP payload type 0), so only gstreamer1.0-plugins-base
(audiotestsrc, audioconvert) and gstreamer1.0-plugins-good (mulawenc, rtppcmupay, rtpbin,
udpsink) are needed. Lower transport UDP only: a client cannot fall back to RTP over the
TCP connection, so a test that receives media proves the UDP path. Prints `listening` on
stdout once the socket is bound; runs until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print("usage: rtsp-server.py ADDRESS PORT [MOUNT]", file=sys.stderr)
        return 2
    address, port = sys.argv[1], sys.argv[2]
    mount = "/" + (sys.argv[3] if len(sys.argv) == 4 else "test").lstrip("/")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(address)
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 "
        "! audioconvert ! mulawenc ! rtppcmupay name=pay0 pt=0 )"
    )
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"rtsp-server: cannot listen on {address}:{port}", file=sys.stderr)
        return 1
    print("listening", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
