"""Printed by `make run` before the server starts: where to go and how to log in."""

from portal.seed import DEMO_ACCOUNTS, DEMO_PASSWORD


def main() -> None:
    print("\n三长通 · Sanzhang Portal  →  http://127.0.0.1:5000")
    print(f"演示账号 demo logins (password / 密码: {DEMO_PASSWORD})")
    for phone, name, label, where in DEMO_ACCOUNTS:
        print(f"  {phone}  {name:<6}{label:<6}{where}")
    print()


if __name__ == "__main__":
    main()
