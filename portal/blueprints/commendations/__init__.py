"""好邻 commendations (campaigns, nominations, 公示 with objections, approval) and the 四个一
print kit. Pages come in a later step; the rules are in services.py."""
