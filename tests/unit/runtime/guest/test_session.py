"""The guest's HOME rule, as runc's."""

from runcvm.guest.session import home_of


def test_home_comes_from_passwd_or_is_root(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\nweb:x:33:33::/var/www:/usr/sbin/nologin\nodd:x:7:7::\n")
    assert home_of(0, str(passwd)) == "/root"
    assert home_of(33, str(passwd)) == "/var/www"
    assert home_of(7, str(passwd)) == "/"
    assert home_of(1000, str(passwd)) == "/"
    assert home_of(0, str(tmp_path / "missing")) == "/"
