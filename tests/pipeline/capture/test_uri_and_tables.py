"""Source URIs, the element table against recorded gst-inspect-1.0 listings (a Jetson on JetPack 5 and 4, a
PC), the pipelines built from them, and V4L2 format selection on recorded v4l2-ctl listings."""

from pathlib import Path

import pytest

from jetvit_daemon.pipeline.capture.elements import GstElements, parse_gst_inspect
from jetvit_daemon.pipeline.capture.gst_pipeline import (
    PipelineUnavailable,
    SourceOptions,
    Target,
    build_plan,
    crop_box,
)
from jetvit_daemon.pipeline.capture.uri import parse_uri
from jetvit_daemon.pipeline.capture.v4l2 import V4l2Mode, choose_mode, parse_formats

DATA = Path(__file__).resolve().parent / "data"


def listing(name: str) -> GstElements:
    return GstElements(parse_gst_inspect((DATA / name).read_text()))


PC = listing("gst-inspect-debian12-pc.txt")
JP5 = listing("gst-inspect-jetson-jp5.txt")
JP4 = listing("gst-inspect-jetson-jp4.txt")
T224 = Target(224, 224, crop=True)


def test_uris_parse_with_credentials_kept_out_of_everything_shown():
    u = parse_uri("rtsp://admin:s3cr%40t@cam.local:8554/live/main")
    assert (u.scheme, u.username, u.password) == ("rtsp", "admin", "s3cr@t")
    assert u.target == "rtsp://cam.local:8554/live/main"
    assert u.redacted == "rtsp://admin:***@cam.local:8554/live/main"
    assert "s3cr" not in repr(u) and "s3cr" not in u.default_name()
    assert u.redact("could not open rtsp://admin:s3cr@t@x") == "could not open rtsp://admin:***@x"
    assert u.live
    assert parse_uri("csi://1").target == "1"
    assert parse_uri("v4l2:///dev/v4l/by-id/usb-046d_C920-video-index0").target.startswith("/dev/v4l/by-id/")
    assert parse_uri("v4l2://0").target == "/dev/video0"
    f = parse_uri("file:///data/clips/a b.mp4")
    assert f.target == "/data/clips/a b.mp4" and not f.live and f.default_name() == "a_b"
    assert parse_uri("synthetic://").scheme == "synthetic"


@pytest.mark.parametrize("text, message", [
    ("/dev/video0", "is not a source URI"),
    ("http://cam/stream", "unknown scheme 'http'"),
    ("csi://front", "names the sensor id"),
    ("v4l2://cam", "names a device"),
    ("rtsp://user:pw@/x", "needs a host"),
])
def test_bad_uris_are_refused_with_what_would_be_valid(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_uri(text)
    assert "pw@" not in str(info.value)


def test_listings_parse_to_element_names():
    assert {"nvarguscamerasrc", "nvvidconv", "nvv4l2decoder", "nvjpegdec"} <= JP5.names
    assert "omxh264dec" not in JP5.names and "omxh264dec" in JP4.names
    assert not PC.hardware_scaling and JP5.hardware_scaling
    assert {"videoconvert", "videoscale", "aspectratiocrop", "rtspsrc", "fdsink", "avdec_h264"} <= PC.names
    assert "video/x-h264" not in PC.names  # typefinders are not elements


def test_decoder_choice_is_table_driven_per_board():
    assert JP5.decoder("h264") == ("h264parse", "nvv4l2decoder")
    assert JP4.decoder("h264") == ("h264parse", "nvv4l2decoder")  # r32 has both; NVIDIA's V4L2 decoder first
    assert GstElements(JP4.names - {"nvv4l2decoder"}).decoder("h265") == ("h265parse", "omxh265dec")
    assert PC.decoder("h264") == ("h264parse", "avdec_h264")
    assert JP5.decoder("jpeg") == ("nvjpegdec",)
    assert PC.decoder("jpeg") == ("jpegdec",)
    assert GstElements(frozenset({"h264parse"})).decoder("h264") is None


def test_pc_file_pipeline_crops_and_scales_in_software_before_colour_conversion():
    plan = build_plan(parse_uri("file:///v/a.mp4"), SourceOptions(pace="fast", max_fps=10), PC, T224)
    assert plan.shown == ("filesrc location=/v/a.mp4 ! decodebin ! videorate drop-only=true max-rate=10 ! "
                          "aspectratiocrop aspect-ratio=224/224 ! videoscale ! videoconvert ! "
                          "video/x-raw,format=BGR,width=224,height=224 ! fdsink fd=1 sync=false")
    assert plan.argv[:3] == ("gst-launch-1.0", "-q", "filesrc") and not plan.hardware
    assert build_plan(parse_uri("file:///v/a.mp4"), SourceOptions(), PC, T224).argv[-1] == "sync=true"


def test_jetson_csi_pipeline_scales_in_vic_hardware_with_a_centred_crop():
    plan = build_plan(parse_uri("csi://0"), SourceOptions(fps=30, sensor_mode=2, flip=2), JP5, T224)
    assert plan.hardware
    assert plan.shown == (
        "nvarguscamerasrc sensor-id=0 sensor-mode=2 ! "
        "video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1,format=NV12 ! "
        "nvvidconv flip-method=2 left=420 right=1500 top=0 bottom=1080 ! "
        "video/x-raw,format=BGRx,width=224,height=224 ! videoconvert ! video/x-raw,format=BGR ! fdsink fd=1 sync=false")
    with pytest.raises(PipelineUnavailable, match="nvarguscamerasrc"):
        build_plan(parse_uri("csi://0"), SourceOptions(), PC, T224)


def test_rtsp_pipeline_passes_credentials_as_properties_and_never_shows_them():
    uri = parse_uri("rtsp://admin:hunter2@10.0.0.5/h264")
    plan = build_plan(uri, SourceOptions(codec="h264", latency_ms=100), JP5, T224)
    assert "hunter2" not in plan.shown and "user-pw=***" in plan.shown
    assert "user-pw=hunter2" in plan.argv and "location=rtsp://10.0.0.5/h264" in plan.argv
    assert plan.shown.startswith("rtspsrc location=rtsp://10.0.0.5/h264 protocols=tcp latency=100 user-id=admin "
                                 "user-pw=*** ! rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv")
    pc = build_plan(parse_uri("rtsp://10.0.0.5/x"), SourceOptions(protocol="udp"), PC, T224)
    assert pc.shown.startswith("rtspsrc location=rtsp://10.0.0.5/x protocols=udp latency=200 ! decodebin ! ")


def test_crop_box_is_centred_with_the_target_aspect():
    assert crop_box(1920, 1080, Target(224, 224)) == (420, 1500, 0, 1080)
    assert crop_box(1080, 1920, Target(224, 224)) == (0, 1080, 420, 1500)
    assert crop_box(640, 480, Target(320, 240)) == (0, 640, 0, 480)


def test_v4l2_formats_parse_from_a_recorded_listing():
    modes = parse_formats((DATA / "v4l2-ctl-logitech-c920.txt").read_text())
    assert V4l2Mode("MJPG", 1920, 1080, 30.0) in modes and V4l2Mode("YUYV", 1920, 1080, 5.0) in modes
    assert V4l2Mode("YUYV", 1600, 896, 7.5) in modes
    assert {m.fourcc for m in modes} == {"YUYV", "MJPG", "H264"}


@pytest.mark.parametrize("listing_name, w, h, fps, fmt, expected", [
    ("v4l2-ctl-logitech-c920.txt", 1920, 1080, 30, "auto", V4l2Mode("MJPG", 1920, 1080, 30.0)),  # YUYV: 5 fps only
    ("v4l2-ctl-logitech-c920.txt", 640, 480, 30, "auto", V4l2Mode("YUYV", 640, 480, 30.0)),  # small: no decode
    ("v4l2-ctl-logitech-c920.txt", 1280, 700, 25, "auto", V4l2Mode("MJPG", 1280, 720, 30.0)),  # closest, ≥ fps
    ("v4l2-ctl-logitech-c920.txt", 1920, 1080, 30, "yuyv", V4l2Mode("YUYV", 1920, 1080, 5.0)),  # as asked
    ("v4l2-ctl-yuyv-only-720p.txt", 1920, 1080, 30, "auto", V4l2Mode("YUYV", 1280, 720, 10.0)),
    ("v4l2-ctl-yuyv-only-720p.txt", None, None, 30, "auto", V4l2Mode("YUYV", 640, 480, 30.0)),
])
def test_v4l2_mode_is_the_cameras_own_closest_format(listing_name, w, h, fps, fmt, expected):
    modes = parse_formats((DATA / listing_name).read_text())
    assert choose_mode(modes, w, h, fps, fmt) == expected


def test_v4l2_pipelines_for_mjpeg_and_yuyv_cameras_on_each_board():
    mjpg = V4l2Mode("MJPG", 1280, 720, 30.0)
    jet = build_plan(parse_uri("v4l2:///dev/video0"), SourceOptions(), JP5, T224, mjpg)
    assert jet.shown == ("v4l2src device=/dev/video0 ! image/jpeg,width=1280,height=720,framerate=30/1 ! nvjpegdec ! "
                         "nvvidconv left=280 right=1000 top=0 bottom=720 ! video/x-raw,format=BGRx,width=224,"
                         "height=224 ! videoconvert ! video/x-raw,format=BGR ! fdsink fd=1 sync=false")
    pc = build_plan(parse_uri("v4l2:///dev/video0"), SourceOptions(), PC, T224, V4l2Mode("YUYV", 640, 480, 7.5))
    assert pc.shown.startswith("v4l2src device=/dev/video0 ! video/x-raw,format=YUY2,width=640,height=480,"
                               "framerate=15/2 ! aspectratiocrop")
    assert choose_mode([], 640, 480, 30) is None


RECORDED = (DATA / "gst-inspect-jetson-recorded.txt").read_text()


def _recorded_section(tag: str) -> str:
    """The lines of one `# [tag]` section of the recorded Jetson output."""
    out, inside = [], False
    for line in RECORDED.splitlines():
        if line.startswith("# ["):
            inside = line.startswith(f"# [{tag}]")
        elif inside:
            out.append(line)
    assert out, f"no section {tag}"
    return "\n".join(out)


def test_recorded_jetson_output_parses_to_the_omx_decoders_the_table_falls_back_to():
    # Real `gst-inspect-1.0 | grep omx` lines (L4T r32 Nano; a TX1 on NVIDIA's L4T Ubuntu): the parser reads
    # their shape, and the table's OMX chains name elements those boards really list.
    tx1 = parse_gst_inspect(_recorded_section("tx1-l4t-ubuntu-omx"))
    nano = parse_gst_inspect(_recorded_section("r32-nano-omx"))
    assert {"omxh264dec", "omxh265dec"} <= tx1 and {"omxh265enc", "omxvp9dec"} <= nano
    board = GstElements(tx1 | {"h264parse", "h265parse"})  # the parsers are upstream gst-plugins-bad
    assert board.decoder("h264") == ("h264parse", "omxh264dec")
    assert board.decoder("h265") == ("h265parse", "omxh265dec")


def test_recorded_jetson_output_names_the_hardware_jpeg_decoder_and_nvvidconv_has_no_bgr():
    elements = [ln.split(":")[0].strip() for ln in _recorded_section("jp46-nano-nvjpeg").splitlines()
                if ln.startswith("  ")]
    assert elements == ["nvjpegdec", "nvjpegenc"]
    assert GstElements(frozenset(elements)).decoder("jpeg") == ("nvjpegdec",)
    formats = next(ln.split(":", 1)[1] for ln in _recorded_section("nvvidconv-element").splitlines()
                   if ln.startswith("nvvidconv-src-formats:"))
    formats_set = {f.strip() for f in formats.split(",")}
    assert "BGRx" in formats_set and "BGR" not in formats_set
    # So a Jetson pipeline asks nvvidconv for BGRx and lets videoconvert drop the fourth byte.
    plan = build_plan(parse_uri("file:///v/a.mp4"), SourceOptions(pace="fast"), JP5, T224)
    assert "format=BGRx" in plan.shown and plan.shown.index("nvvidconv") < plan.shown.index("videoconvert")
