

def test_take_where_relays_every_frame_and_copies_only_the_wanted_payloads():
    from src.tws import wire

    frames = wire.FrameBuffer()
    stream = wire.encode(1, 2, 3) + wire.encode(3, 7, "Filled") + wire.encode(4, 2, 7, 201, "no") + wire.encode(9, 1)
    frames.feed(stream + wire.encode(1, 2)[:5])  # and the start of one more
    raw, wanted = frames.take_where((b"3\0", b"4\0"))
    assert raw == stream  # unchanged, in order
    assert wanted == [b"3\0007\0Filled\0", b"4\0002\0007\000201\0no\0"]
    assert frames.pending == 5


def test_skim_gives_the_wanted_payloads_and_keeps_only_an_incomplete_frame():
    from src.tws import wire

    frames = wire.FrameBuffer()
    stream = wire.encode(1, 2, 3) + wire.encode(3, 7, "Filled") + wire.encode(9, 1)
    frames.feed(stream + wire.encode(3, 8, "Submitted")[:6])
    assert frames.skim((b"3\0",)) == [b"3\0007\0Filled\0"]
    assert frames.pending == 6
    frames.feed(wire.encode(3, 8, "Submitted")[6:])
    assert frames.skim((b"3\0",)) == [b"3\0008\0Submitted\0"]
    assert frames.pending == 0


def test_a_wanted_prefix_is_looked_for_inside_its_frame_only():
    from src.tws import wire

    frames = wire.FrameBuffer()
    frames.feed(wire.encode_raw(b"3") + wire.encode_raw(b"") + wire.encode(3, 9, "Filled"))
    raw, wanted = frames.take_where((b"3\0",))
    assert wanted == [b"3\0009\0Filled\0"]  # the 1-byte frame "3" is not an orderStatus
    frames.feed(wire.encode_raw(b""))
    assert frames.take() == (wire.encode_raw(b""), [b""])
