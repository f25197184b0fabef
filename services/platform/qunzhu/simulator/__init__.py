"""A community simulator: generate a realistic community, drive it through the gateway, report what Qunzhu saw.

generate.py  the community model (groups, Zipf activity, planted key people, lurkers, spammers, money)
drive.py     sends it through the gateway's real signed webhook endpoints and public API
report.py    reads the outcome back through the gateway's public API and prints it
demo.py      `python -m qunzhu demo`: embedded mode (or --gateway URL), progress bar, report
"""
