"""A real GstRtspServer for the tests, run under /usr/bin/python3 (Debian's, which has gi):
    rtsp_server.py PORT [--auth user:pass] /path=LAUNCH ...
Prints READY when it listens on 127.0.0.1:PORT."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main(argv):
    Gst.init(None)
    port, rest = argv[0], argv[1:]
    auth_spec = None
    if rest and rest[0] == "--auth":
        auth_spec, rest = rest[1], rest[2:]
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    if auth_spec:
        user, password = auth_spec.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
    mounts = server.get_mount_points()
    for spec in rest:
        path, launch = spec.split("=", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        if auth_spec:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_role("user")
            permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
            permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
            factory.set_permissions(permissions)
        mounts.add_factory(path, factory)
    if server.attach(None) == 0:
        print("cannot listen on port", port, flush=True)
        return 1
    print("READY", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
