"""GB/T 28181 alarm methods and types as gridwatch's camera events (pure).

AlarmMethod (GB/T 28181-2016 §A.2.5 Notify/Alarm, A.2.3.1.6 ResetAlarm's table): 1 电话报警, 2 设备报警,
3 短信报警, 4 GPS报警, 5 视频报警, 6 设备故障报警, 7 其他报警. AlarmType, by method:
- 2 (device): 1 视频丢失, 2 设备防拆, 3 存储设备磁盘满, 4 设备高温, 5 设备低温;
- 5 (video): 1 人工视频, 2 运动目标检测, 3 遗留物检测, 4 物体移除检测, 5 绊线检测, 6 入侵检测, 7 逆行检测,
  8 徘徊检测, 9 流量统计, 10 密度检测, 11 视频异常检测, 12 快速移动, 13 图像遮挡 (2022);
- 6 (device fault): 1 存储设备磁盘故障, 2 存储设备风扇故障.

A method/type pair with a camera event here is published on `gw/{grid}/camera/{channel}/event`, so the
`event:` rules that already watch Hikvision's and Dahua's alarms watch these too. The others (a phone call,
a disk full, a fan) are not events on a picture: they are answered, counted as `unmapped` by their pair and
logged, and no case opens for them unless a rule is later written for a new event name.
"""

from __future__ import annotations

from typing import Final

from gridwatch.core.kinds import CameraEventName

EVENTS: Final[dict[tuple[int, int], CameraEventName]] = {
    (2, 1): "video_loss", (2, 2): "tamper",
    (5, 2): "motion", (5, 5): "line_crossing", (5, 6): "intrusion", (5, 7): "line_crossing",
    (5, 8): "loitering", (5, 11): "tamper", (5, 12): "motion", (5, 13): "tamper",
}
METHODS: Final[dict[int, str]] = {1: "电话报警", 2: "设备报警", 3: "短信报警", 4: "GPS报警", 5: "视频报警",
                                  6: "设备故障报警", 7: "其他报警"}


def event_of(method: int, alarm_type: int | None) -> CameraEventName | None:
    """The camera event of a GB/T 28181 alarm, or None when it is not an event on a picture."""
    if alarm_type is None:
        return "motion" if method == 5 else None  # a video alarm without its type: something moved
    return EVENTS.get((method, alarm_type))
