"""Hand-written sentiment lexicons (Chinese, English, emoji) for livestream and community chat."""

from __future__ import annotations

# Polarity weights: about +-2 strong ("垃圾", "scam"), +-1 clear ("喜欢", "slow"), +-0.5 weak; a
# weak term alone stays neutral (see the thresholds in sentiment.py). Chinese entries are matched
# as substrings, longest first; English entries are words or word sequences (lower case).

ZH_TERMS: dict[str, float] = {
    # looks, feel, taste
    "好看": 1.2, "漂亮": 1.2, "美哭": 1.5, "真美": 1.2, "太美": 1.4, "颜值高": 1.2, "颜值在线": 1.2,
    "显白": 0.8, "显瘦": 0.8, "显气色": 0.8, "百搭": 0.8, "高级": 0.8, "高级感": 1.0, "大气": 0.8,
    "精致": 1.0, "精美": 1.0, "精细": 0.8, "可爱": 1.0, "帅": 1.0, "帅气": 1.0, "洋气": 0.8,
    "舒服": 1.0, "舒适": 1.0, "柔软": 0.8, "丝滑": 1.0, "顺滑": 0.8, "细腻": 0.8, "服帖": 0.8,
    "清爽": 0.8, "水润": 0.8, "持久": 0.8, "显色": 0.6, "合身": 1.0, "好穿": 1.0, "透气": 0.6,
    "好吃": 1.2, "好喝": 1.2, "好闻": 1.0, "美味": 1.2, "香甜": 0.8, "正宗": 1.0, "新鲜": 1.0,
    "干净": 0.6, "真香": 1.2, "太香了": 1.2,
    # quality, use
    "质量好": 1.5, "质量不错": 1.5, "品质好": 1.5, "做工好": 1.2, "耐用": 1.0, "结实": 1.0,
    "好用": 1.2, "实用": 0.8, "方便": 0.8, "好上手": 0.8, "有效果": 0.8, "效果明显": 1.2,
    "效果好": 1.2, "变好": 0.8, "改善": 0.8, "正品": 0.5, "靠谱": 1.2, "放心": 1.0, "稳": 0.5,
    "尺码准": 0.8, "码数准": 0.8, "很合适": 1.0, "刚刚好": 0.8, "没毛病": 1.0, "没得说": 1.0,
    "没话说": 1.0, "没问题": 0.5, "无可挑剔": 1.8, "完美": 1.5, "优秀": 1.2, "不错": 1.0,
    "还行": 0.3, "还可以": 0.3, "挺好": 1.0,
    # price, deals
    "划算": 1.2, "实惠": 1.0, "便宜": 0.7, "值": 0.8, "值得": 1.0, "超值": 1.5, "物超所值": 2.0,
    "性价比高": 1.5, "性价比很高": 1.5, "性价比超高": 1.6, "高性价比": 1.5, "划得来": 1.0,
    "赚到": 1.2, "赚了": 1.0, "捡漏": 1.0, "力度大": 1.0, "福利": 0.4, "给力": 1.2,
    # feelings, praise, loyalty
    "喜欢": 1.0, "爱": 0.8, "爱了": 1.5, "超爱": 1.6, "爱你": 1.0, "爱不释手": 1.6, "心动": 1.0,
    "满意": 1.2, "开心": 1.0, "高兴": 1.0, "幸福": 1.0, "惊喜": 1.2, "惊艳": 1.2, "感动": 0.8,
    "期待": 0.6, "激动": 0.6, "感谢": 0.6, "谢谢": 0.4, "辛苦了": 0.5, "支持": 0.8, "棒": 1.2,
    "棒棒哒": 1.5, "赞": 1.0, "点赞": 1.0, "好评": 1.5, "五星好评": 2.0, "推荐": 0.8, "安利": 0.8,
    "种草": 0.8, "宝藏": 1.2, "必买": 1.0, "必入": 1.0, "闭眼入": 1.5, "回购": 1.2, "无限回购": 2.0,
    "囤": 0.6, "绝了": 1.5, "牛逼": 1.5, "太牛了": 1.2, "真牛": 1.2, "厉害": 1.0, "无敌": 1.0,
    "冲冲冲": 1.0, "绝绝子": 1.5, "优质": 1.0,
    # service, delivery, the host
    "耐心": 1.0, "贴心": 1.0, "热情": 0.8, "专业": 0.8, "周到": 1.0, "细心": 0.8, "及时": 0.8,
    "准时": 0.8, "神速": 1.0, "发货快": 1.0, "发货很快": 1.0, "发货超快": 1.2, "物流快": 1.0,
    "物流很快": 1.0, "物流超快": 1.2, "到货快": 1.0, "速度快": 1.0, "清楚": 0.6, "有趣": 0.8,
    # more positive: food, wear, goods, service, slang
    "甜": 0.8, "香": 0.6, "清香": 0.8, "甘甜": 0.8, "酥脆": 0.8, "多汁": 0.8, "饱满": 0.8,
    "入口即化": 1.0, "分量足": 1.0, "量大": 0.8, "个大": 0.8, "爱吃": 1.0, "爱喝": 1.0,
    "轻便": 0.8, "保暖": 0.8, "暖和": 0.8, "显年轻": 1.0, "耐穿": 1.0, "版型好": 1.0,
    "版型正": 0.8, "厚实": 0.8, "软糯": 0.8, "滋润": 0.8, "提亮": 0.8, "持妆": 0.8, "准": 0.5,
    "准确": 0.6, "跟新的一样": 0.8, "美美的": 1.0, "满分": 1.5, "必备": 0.8, "良心": 1.2,
    "良心价": 1.2, "诚信": 0.8, "用心": 1.0, "负责": 0.8, "认真": 0.8, "信赖": 1.0, "信任": 0.8,
    "大方": 0.8, "热心": 1.0, "秒回": 1.0, "回复快": 1.0, "回复及时": 1.0, "解决了": 0.8,
    "省心": 1.0, "安心": 0.8, "舒心": 1.0, "顺利": 0.6, "省钱": 0.8, "白菜价": 1.0, "抢到": 0.8,
    "中奖": 0.8, "幸运": 0.8, "感恩": 0.8, "爽": 1.0, "爱死了": 1.8, "哈哈": 0.4, "嘻嘻": 0.4,
    "开森": 1.0,
    # negative: looks, feel, taste
    "难看": -1.2, "丑": -1.2, "土气": -1.0, "廉价": -1.2, "廉价感": -1.2, "难用": -1.2,
    "难吃": -1.5, "难喝": -1.5, "难闻": -1.5, "怪味": -1.2, "异味": -1.0, "臭": -1.2,
    "刺鼻": -1.2, "不新鲜": -1.2, "变质": -1.5, "过期": -1.5, "发霉": -1.8, "拔干": -1.0,
    "干涩": -1.0, "搓泥": -1.0, "闷痘": -1.0, "长痘": -1.0, "过敏": -1.2, "红疹": -1.0,
    "烂脸": -1.8, "刺痛": -1.0, "疼": -0.8, "痛": -0.8, "痒": -0.8, "磨脚": -1.2, "夹脚": -1.0,
    "偏小": -0.6, "偏大": -0.6, "不合适": -0.8, "不合身": -0.8, "不舒服": -1.0,
    # negative: quality, defects, wrong goods
    "差": -1.2, "质量差": -1.5, "质量不行": -1.5, "不行": -1.0, "差劲": -1.5, "劣质": -1.8,
    "次品": -1.5, "残次": -1.5, "瑕疵": -1.2, "起球": -1.0, "掉色": -1.2, "褪色": -1.2,
    "缩水": -1.2, "开线": -1.2, "线头": -0.6, "破洞": -1.2, "破损": -1.2, "坏": -1.0, "坏了": -1.3,
    "坏的": -1.3, "烂": -1.0, "压烂": -1.2, "压坏": -1.2, "漏液": -1.2, "漏发": -1.2,
    "少发": -1.2, "发错": -1.2, "错发": -1.2, "丢件": -1.2, "色差": -1.0, "不一样": -0.8,
    "不符": -1.0, "货不对板": -1.8, "没用": -1.0, "没效果": -1.2, "无效": -1.2, "鸡肋": -1.0,
    "严重": -0.8, "翻车": -1.5, "一般": -0.4, "一般般": -0.8, "凑合": -0.4, "不好": -1.0,
    "不好用": -1.2, "不好看": -1.2, "差强人意": -0.8,
    "碎": -1.0, "碎了": -1.2, "划痕": -1.0, "刮花": -1.0, "开胶": -1.2, "脱胶": -1.2,
    "断了": -1.0, "裂开": -1.0, "裂了": -1.0, "变形": -1.0, "生锈": -1.2, "磨损": -1.0,
    "脏": -1.0, "污渍": -1.0, "发黄": -0.8, "掉毛": -1.0, "掉渣": -0.8, "掉皮": -1.0, "掉漆": -1.0,
    "脱妆": -1.0, "紧绷": -0.8, "粗糙": -1.0, "扎人": -1.0, "油腻": -0.8, "腥": -1.0, "苦": -0.5,
    "拉肚子": -1.5, "肚子疼": -1.2, "出血": -1.0, "起泡": -0.8, "不适合": -0.8, "差距": -0.6,
    "简陋": -1.0, "地摊货": -1.5, "便宜货": -1.0, "二手": -0.8, "旧的": -0.8, "脱线": -1.0,
    "用不了": -1.2, "不能用": -1.2, "没法用": -1.2, "打不开": -1.0, "看不了": -1.0,
    "看不清": -0.8, "听不清": -0.8, "卡了": -0.8, "在卡": -0.8,
    # negative: fake, cheating, price
    "假货": -2.0, "假的": -1.5, "高仿": -1.5, "山寨": -1.5, "骗": -1.5, "骗子": -2.0,
    "被骗": -2.0, "骗人": -2.0, "骗钱": -2.0, "欺骗": -1.8, "坑": -1.2, "坑人": -1.8,
    "坑爹": -1.5, "踩坑": -1.5, "踩雷": -1.5, "套路": -1.2, "忽悠": -1.5, "虚假": -1.5,
    "虚假宣传": -2.0, "夸大": -1.2, "黑心": -1.8, "奸商": -2.0, "上当": -1.5, "智商税": -1.5,
    "割韭菜": -1.5, "贵": -0.8, "太贵了": -1.5, "不值": -1.0, "不值得": -1.2, "虚高": -1.2,
    "溢价": -0.6, "白买": -1.5, "浪费": -1.2, "浪费时间": -1.5, "浪费钱": -1.5,
    # negative: delivery, refunds, service
    "慢": -0.7, "发货慢": -1.2, "物流慢": -1.2, "太慢了": -1.2, "没发货": -1.0, "还没发货": -1.2,
    "不发货": -1.2, "迟迟": -0.8, "退款": -0.8, "退货": -0.8, "退钱": -1.5, "不给退": -1.5,
    "拒绝退款": -1.5, "客服": -0.2, "态度差": -1.5, "态度不好": -1.5, "态度恶劣": -1.8,
    "服务差": -1.5, "敷衍": -1.2, "不理人": -1.2, "没人理": -1.2, "没人回": -1.2, "没人管": -1.2,
    "没人处理": -1.2, "不回消息": -1.2, "不回复": -1.2, "不回答": -1.0, "不处理": -1.2,
    "投诉": -1.5, "举报": -1.2, "差评": -2.0,
    "没收到": -1.0, "还没收到": -1.2, "没到账": -1.0, "物流不更新": -1.2, "不更新": -0.8,
    "延迟": -0.8, "延误": -1.0, "一直等": -0.8, "没货": -0.6, "缺货": -0.6, "自动回复": -0.8,
    "不耐烦": -1.2, "凶": -1.0, "被踢": -1.0, "禁言": -1.0, "买贵了": -1.2, "不给补": -1.2,
    # negative: feelings, the room, spam
    "失望": -1.5, "后悔": -1.5, "生气": -1.2, "气死": -1.5, "气死了": -1.5, "烦": -1.0,
    "烦死了": -1.8, "讨厌": -1.2, "恶心": -1.5, "糟糕": -1.5, "糟心": -1.2, "无语": -1.2,
    "离谱": -1.2, "心累": -1.0, "崩溃": -1.2, "郁闷": -1.0, "难受": -1.0, "麻烦": -0.3,
    "垃圾": -2.0, "不推荐": -1.2, "别买": -1.8, "千万别买": -2.0, "劝退": -1.2, "避雷": -1.5,
    "拉黑": -1.5, "取关": -1.2, "不会再买": -1.5, "再也不买": -1.8, "不买了": -1.0,
    "再也不来": -1.5, "不敢用": -1.0, "不敢买": -1.0, "卡顿": -1.0, "卡死": -1.2, "太卡了": -1.2,
    "好卡": -1.0, "很卡": -1.0, "一直卡": -1.0, "掉线": -0.8, "黑屏": -1.0, "没声音": -0.8,
    "抢不到": -0.8, "没抢到": -0.8, "刷屏": -0.8, "发广告": -1.0, "广告": -0.3, "骚扰": -1.2,
    "不满意": -1.2, "不满": -1.0, "吐槽": -0.8,
    "耍人": -1.5, "耍我": -1.5, "糊弄": -1.2, "恶劣": -1.5, "过分": -1.2, "凭什么": -1.0,
    "霸王条款": -1.5, "跑路": -1.5, "不地道": -1.0, "拉胯": -1.5, "拉垮": -1.5, "辣鸡": -2.0,
    "坑货": -1.5, "吐了": -1.0, "不要买": -1.5,
}  # fmt: skip

# Chinese words that read as a term or an intensifier: an intensifier when a term follows at once
# ("好看" is matched whole; "好 + 可爱" intensifies), else a term ("效果出乎意料的好").
ZH_DUAL: dict[str, tuple[float, float]] = {"好": (0.8, 1.3)}

ZH_NEGATORS: frozenset[str] = frozenset(
    {
        "不", "没", "没有", "别", "不太", "并不", "不是", "未", "无", "毫无", "毫不", "从不",
        "从没", "从来没", "从来不", "从来没有", "一点都不", "一点也不", "绝不", "不怎么",
        "根本不", "根本没", "根本没有", "并没有", "还没", "都不", "不会", "不算", "不够", "不再",
        "也不", "并非", "不大",
    }
)  # fmt: skip

ZH_INTENSIFIERS: dict[str, float] = {
    "很": 1.3, "太": 1.5, "非常": 1.5, "超": 1.5, "超级": 1.6, "特别": 1.5, "真的": 1.3,
    "真": 1.3, "巨": 1.6, "贼": 1.5, "十分": 1.4, "极其": 1.6, "极": 1.5, "最": 1.5, "相当": 1.3,
    "挺": 1.1, "蛮": 1.1, "更": 1.2, "越来越": 1.2, "绝对": 1.3, "完全": 1.3, "实在": 1.3,
    "有点": 0.7, "有些": 0.7, "稍微": 0.6, "略": 0.7, "一直": 1.1, "好多": 1.1,
}  # fmt: skip

ZH_CONTRAST: frozenset[str] = frozenset({"但是", "但", "可是", "不过", "然而", "只是"})

# Words that contain a term, a negator or an intensifier but are none of them: matched whole so
# their characters are not read as sentiment ("你好", "差不多", "能不能", "快递", "香水").
ZH_NEUTRAL: frozenset[str] = frozenset(
    {
        "你好", "您好", "大家好", "早上好", "上午好", "中午好", "下午好", "晚上好", "好的", "好几",
        "好久", "好像", "只好", "正好", "刚好", "最好", "好不好", "好奇", "爱好", "好友",
        "美国", "美元", "美容", "美妆", "美白", "美甲", "香水", "香港", "香味", "快递", "快点",
        "不同", "不少", "不断", "不用", "不然", "不管", "不停", "不仅", "不久", "不知道", "差不多",
        "出差", "时差", "误差", "有没有", "没想到", "没事", "没关系", "慢慢", "牛奶", "牛肉",
        "牛仔", "饼干", "干皮", "价值", "值班", "可不可以", "能不能", "是不是", "要不要",
        "会不会", "行不行", "对不对", "好不", "买不买", "差价", "一般多久", "一般几天", "无线",
        "无糖", "无门槛", "无理由", "无忧", "坏账", "烂番茄", "最近", "最后", "最新", "超市",
        "超时", "不要", "特别款", "相当于", "太阳", "真人", "真皮", "贵宾", "稳定", "差点",
        "差额", "差异", "香蕉", "香菜", "香肠", "香皂", "香薰", "香氛", "辛苦", "标准", "准备",
        "准不准", "甜不甜", "香不香", "脏不脏", "软件", "苦瓜", "甜品", "甜点", "甜度", "心脏",
        "爽肤水", "碎花",
    }
)  # fmt: skip

EMOJI: dict[str, float] = {
    "👍": 1.2, "👏": 1.0, "❤": 1.2, "♥": 1.0, "💕": 1.2, "💖": 1.2, "💗": 1.2, "💓": 1.2,
    "💯": 1.2, "😍": 1.5, "🥰": 1.5, "😘": 1.0, "😊": 1.0, "😄": 1.0, "😁": 1.0, "😀": 0.8,
    "😃": 0.8, "🤩": 1.5, "🎉": 1.0, "🔥": 1.0, "✨": 0.6, "🌹": 0.8, "🙏": 0.5, "💪": 0.8,
    "🤗": 1.0, "😋": 1.2, "👌": 1.0, "⭐": 0.5, "🌟": 0.6,
    "👎": -1.5, "😡": -1.6, "😠": -1.5, "🤬": -1.8, "😤": -1.2, "💩": -1.5, "🤮": -1.6,
    "🙄": -1.0, "😒": -1.0, "😞": -1.2, "😔": -1.0, "😢": -1.0, "😩": -1.0, "😫": -1.0,
    "💔": -1.2, "😑": -0.6, "😓": -0.6, "🤡": -1.0,
    # WeChat sticker codes and text emoticons
    "[强]": 1.2, "[赞]": 1.2, "[玫瑰]": 0.8, "[爱心]": 1.2, "[鼓掌]": 1.0, "[耶]": 0.8,
    "[弱]": -1.2, "[发怒]": -1.5, "[撇嘴]": -0.6, "[抠鼻]": -0.5, "[心碎]": -1.2,
    ":)": 0.8, ":-)": 0.8, ":d": 1.0, "<3": 1.2, ":(": -0.8, ":-(": -0.8,
}  # fmt: skip

EN_TERMS: dict[str, float] = {
    # praise, feelings
    "good": 1.0, "great": 1.5, "nice": 1.0, "love": 1.5, "loved": 1.5, "loves": 1.5,
    "loving": 1.4, "lovely": 1.3, "like": 0.6, "likes": 0.6, "liked": 0.6, "awesome": 1.6,
    "amazing": 1.6, "excellent": 1.6, "perfect": 1.5, "perfectly": 1.2, "best": 1.5, "better": 0.6,
    "beautiful": 1.4, "gorgeous": 1.5, "stunning": 1.5, "cute": 1.0, "adorable": 1.2,
    "fantastic": 1.6, "wonderful": 1.5, "incredible": 1.5, "superb": 1.6, "outstanding": 1.6,
    "brilliant": 1.5, "fabulous": 1.5, "elegant": 1.2, "stylish": 1.0, "classy": 1.0,
    "happy": 1.2, "glad": 1.0, "pleased": 1.2, "satisfied": 1.2, "pleasant": 1.0, "enjoy": 1.0,
    "enjoyed": 1.0, "enjoying": 1.0, "fun": 1.0, "excited": 1.0, "exciting": 1.0, "impressed": 1.2,
    "impressive": 1.2, "obsessed": 1.2, "favorite": 1.2, "favourite": 1.2, "cool": 0.8, "wow": 0.8,
    "yay": 1.0, "haha": 0.4, "thanks": 0.5, "thank": 0.5, "appreciate": 1.0, "winner": 1.0,
    "yyds": 2.0, "666": 1.0, "recommend": 1.0, "recommended": 1.0, "pleasantly surprised": 1.2,
    "keep it up": 1.2, "well done": 1.2, "five stars": 1.5, "5 stars": 1.5,
    # goods, price, service
    "comfortable": 1.2, "comfy": 1.2, "soft": 0.6, "smooth": 0.8, "solid": 0.8, "sturdy": 1.0,
    "durable": 1.0, "reliable": 1.0, "legit": 1.0, "genuine": 0.6, "authentic": 0.6,
    "flattering": 1.0, "delicious": 1.5, "tasty": 1.3, "yummy": 1.3, "fresh": 0.8,
    "effective": 1.0, "useful": 0.8, "handy": 0.8, "convenient": 0.8, "works": 0.5, "worked": 0.5,
    "work": 0.3, "works wonders": 1.5, "game changer": 1.5, "must have": 1.2, "must buy": 1.2,
    "well made": 1.2, "high quality": 1.2, "top quality": 1.4, "top notch": 1.5, "worth": 0.8,
    "worth it": 1.3, "affordable": 0.8, "bargain": 1.0, "steal": 0.6, "great deal": 1.6,
    "good deal": 1.3, "generous": 1.0, "fast": 0.8, "quick": 0.6, "quickly": 0.6, "on time": 0.6,
    "as described": 0.6, "as advertised": 0.6, "helpful": 1.2, "friendly": 1.0, "patient": 0.8,
    "clear": 0.4, "clearly": 0.4, "buy again": 1.0, "order again": 1.0, "repurchase": 1.0,
    "no problem": 0.5,
    "cozy": 1.2, "cosy": 1.2, "warm": 0.5, "lightweight": 0.6, "bright": 0.4, "brighter": 0.6,
    "glowing": 0.8, "nicer": 1.0, "prettier": 1.0, "spot on": 1.2, "exceeded": 1.0,
    "exceeded my expectations": 1.6, "premium": 0.8, "in love": 1.5, "ten out of ten": 1.5,
    "10 out of 10": 1.5, "thrilled": 1.5, "delighted": 1.5, "grateful": 1.0, "thankful": 1.0,
    "neat": 0.8, "sleek": 0.8, "crispy": 0.8, "juicy": 0.8, "sweet": 0.8, "flawless": 1.5,
    "works like a charm": 1.5, "decent": 0.5, "fine": 0.3, "reasonable": 0.6,
    "value for money": 1.2, "good value": 1.3, "trustworthy": 1.0, "responsive": 0.8,
    "prompt": 0.6, "efficient": 0.8, "easy": 0.5, "fit": 0.4, "fits": 0.4, "fixed": 0.6,
    "resolved": 0.8, "solved": 0.8, "awsl": 1.2, "nb": 1.2,
    # negative: feelings, judgement
    "bad": -1.3, "terrible": -1.8, "awful": -1.8, "horrible": -1.8, "worst": -1.8, "worse": -1.2,
    "poor": -1.2, "poorly": -1.2, "hate": -1.6, "hated": -1.6, "dislike": -1.2,
    "disappointed": -1.5, "disappointing": -1.5, "disappointment": -1.5, "unhappy": -1.3,
    "annoying": -1.3, "annoyed": -1.2, "frustrating": -1.4, "frustrated": -1.3, "angry": -1.4,
    "upset": -1.2, "sad": -1.0, "regret": -1.5, "boring": -1.2, "meh": -0.6, "mediocre": -1.0,
    "sucks": -1.6, "suck": -1.4, "gross": -1.5, "disgusting": -1.8, "nasty": -1.6, "ugh": -1.0,
    "wtf": -1.2, "unfortunately": -0.8, "complaint": -1.0, "complaints": -1.0, "complain": -1.0,
    "problem": -0.6, "problems": -0.6, "issue": -0.6, "issues": -0.6,
    "disappoints": -1.5, "disappoint": -1.5, "crappy": -1.6, "shoddy": -1.5, "tacky": -1.0,
    "subpar": -1.2, "lousy": -1.5, "pathetic": -1.6, "ridiculous": -1.0, "unacceptable": -1.6,
    "furious": -1.8, "mad": -1.0, "worried": -0.6, "scary": -0.8, "weird": -0.6, "done with": -1.0,
    "rushing": -0.6, "rushed": -0.6, "sb": -2.0,
    # negative: goods, defects, price
    "ugly": -1.4, "cheaply": -1.0, "cheaply made": -1.5, "flimsy": -1.3, "low quality": -1.5,
    "cheap quality": -1.3, "broken": -1.5, "broke": -1.2, "damaged": -1.5, "defective": -1.8,
    "faulty": -1.5, "cracked": -1.2, "leaking": -1.2, "leaks": -1.0, "leak": -1.0, "torn": -1.2,
    "ripped": -1.2, "stained": -1.0, "missing": -1.0, "wrong": -1.0, "useless": -1.6,
    "junk": -1.8, "garbage": -2.0, "trash": -1.8, "rubbish": -1.8, "crap": -1.8,
    "stopped working": -1.6, "fell apart": -1.6, "falling apart": -1.6, "uncomfortable": -1.2,
    "itchy": -1.0, "rash": -1.2, "allergic": -1.2, "breakout": -1.0, "hurts": -0.8, "hurt": -0.8,
    "painful": -1.0, "smelly": -1.2, "stinks": -1.4, "stink": -1.4, "bland": -0.8, "stale": -1.2,
    "expired": -1.5, "moldy": -1.8, "too small": -0.8, "too big": -0.6, "too tight": -0.8,
    "runs small": -0.5, "runs large": -0.5, "nothing like": -1.2, "nothing special": -0.8,
    "fake": -1.5, "counterfeit": -1.8, "knockoff": -1.5, "scam": -2.0, "scammed": -2.0,
    "fraud": -2.0, "rip off": -1.8, "ripoff": -1.8, "overpriced": -1.5, "expensive": -0.8,
    "pricey": -0.8, "waste": -1.5, "waste of money": -2.0, "waste of time": -1.8,
    "misleading": -1.5, "lie": -1.2, "lied": -1.5, "lying": -1.4, "liar": -1.8, "cheat": -1.6,
    "cheated": -1.8,
    "snapped": -1.2, "crushed": -1.2, "chipping": -1.0, "chipped": -1.0, "scratched": -1.0,
    "scratches": -1.0, "dented": -1.0, "spoiled": -1.5, "rotten": -1.8, "sour": -0.6,
    "breakouts": -1.0, "broke out": -1.2, "broke me out": -1.5, "sick": -1.0, "dangerous": -1.2,
    "unsafe": -1.4, "toxic": -1.4, "burned": -1.0, "burning": -0.8, "irritation": -1.0,
    "irritated": -1.0, "greasy": -0.8, "sticky": -0.6, "shrunk": -1.2, "shrank": -1.2,
    "faded": -1.0, "fades": -0.8, "pilling": -1.0, "peeling": -1.0, "wobbly": -0.8, "noisy": -0.8,
    "overheats": -1.2, "dead on arrival": -2.0, "unusable": -1.6, "doesn't work": -1.5,
    "don't work": -1.5, "didn't work": -1.5, "not working": -1.5, "wrong size": -1.2,
    "wrong color": -1.2, "not what i ordered": -1.5,
    # negative: delivery, refunds, service, the stream
    "late": -0.8, "delayed": -1.0, "delay": -0.8, "slow": -1.0, "slowly": -0.6, "lost": -0.8,
    "refund": -0.6, "money back": -1.2, "haven't received": -1.2, "not received": -1.2,
    "never received": -1.5, "never arrived": -1.5, "still waiting": -1.0, "waiting forever": -1.2,
    "took forever": -1.2, "takes forever": -1.2, "no response": -1.2, "no reply": -1.2,
    "rude": -1.5, "unprofessional": -1.4, "unhelpful": -1.4, "ignore": -0.8, "ignored": -1.2,
    "ignoring": -1.2, "customer service": -0.2, "spam": -1.2, "spamming": -1.2, "lag": -0.8,
    "laggy": -1.0, "lagging": -1.0, "crash": -1.0, "crashing": -1.2, "crashed": -1.2,
    "buggy": -1.0, "never again": -1.5, "never buy": -1.5, "never buying": -1.5,
    "never ordering": -1.5, "don't buy": -1.5, "do not buy": -1.5, "avoid": -1.2, "beware": -1.2,
    "never got": -1.2, "never came": -1.2, "unanswered": -1.0, "no answer": -1.0,
    "never replies": -1.2, "never replied": -1.2, "never responds": -1.2, "never answered": -1.2,
    "nobody answered": -1.2, "nobody replied": -1.2, "no one answered": -1.2,
    "no one replied": -1.2, "doesn't reply": -1.2, "didn't reply": -1.2, "not replying": -1.2,
    "won't answer": -1.0, "no refund": -1.5, "won't refund": -1.5, "refused": -1.2,
    "refuse": -1.2, "denied": -1.2, "double charged": -1.5, "charged twice": -1.5,
    "freezes": -1.0, "buffering": -1.0, "can't hear": -1.0, "can't see": -1.0, "no sound": -1.0,
    "kicked": -1.0, "banned": -1.0, "blocked": -1.0,
}  # fmt: skip

# English words that read as a term or an intensifier ("pretty good" / "so pretty").
EN_DUAL: dict[str, tuple[float, float]] = {"pretty": (1.0, 1.1)}

EN_NEGATORS: frozenset[str] = frozenset(
    {
        "not", "no", "never", "hardly", "barely", "without", "nor", "neither", "nothing",
        "cannot", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont",
        "wouldnt", "cant", "couldnt", "shouldnt", "havent", "hasnt", "hadnt", "aint",
    }
)  # fmt: skip  # and every word ending in "n't"

EN_INTENSIFIERS: dict[str, float] = {
    "very": 1.3, "so": 1.3, "really": 1.3, "super": 1.5, "extremely": 1.6, "absolutely": 1.5,
    "totally": 1.4, "completely": 1.4, "highly": 1.4, "incredibly": 1.5, "too": 1.3, "way": 1.3,
    "most": 1.3, "such": 1.2, "quite": 1.1, "truly": 1.3, "seriously": 1.3, "insanely": 1.5,
    "damn": 1.3, "ridiculously": 1.4, "literally": 1.2, "slightly": 0.6, "a bit": 0.6,
    "a little": 0.6, "somewhat": 0.7, "kinda": 0.7, "kind of": 0.7, "sort of": 0.7, "fairly": 0.8,
}  # fmt: skip

EN_CONTRAST: frozenset[str] = frozenset({"but", "however"})

# Phrases that contain a term, a negator or an intensifier but are none of them.
EN_NEUTRAL: frozenset[str] = frozenset(
    {
        "good morning", "good afternoon", "good evening", "good night", "pretty sure",
        "pretty much", "so far", "so that", "looks like", "look like", "looked like", "just like",
        "feel like", "feels like", "seems like", "sounds like", "tastes like", "smells like",
        "would like", "i'd like", "something like", "no idea", "not sure", "no worries",
        "no matter", "not only", "on the way", "no way", "lost track",
        "customer support", "free shipping", "work out", "at work", "fine print",
        "for sure",
    }
)  # fmt: skip
