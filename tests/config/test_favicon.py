"""The studio's own icon: linked from every page, and /favicon.ico answers."""

import re
import struct
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def test_favicon_ico_leads_to_an_icon_of_our_own(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("favicon.ico")
    icon = finders.find("favicon.ico")
    assert icon is not None
    data = Path(icon).read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1) and count >= 1  # an ICO directory
    sizes = {data[6 + 16 * i] for i in range(count)}
    assert 32 in sizes or 48 in sizes


@pytest.mark.parametrize("url", ["/login/", "/no-such-page/"])
def test_every_page_links_its_icons(client, url):
    html = client.get(url).content.decode()
    links = re.findall(r'<link rel="icon" href="([^"]+)"', html)
    assert len(links) == 2
    for href in links:
        name = href.removeprefix(static(""))
        assert finders.find(name), href
    assert "image/svg+xml" in html
