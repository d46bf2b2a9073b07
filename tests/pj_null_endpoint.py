"""A started pjsua2 Endpoint on the null sound device, for tests that need pjsua2's media clock
without SIP (the engine's own Endpoint is not reachable from tests). Destroy it with
`ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)` after dropping every port."""


def start_null_endpoint(pj):
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    return ep
