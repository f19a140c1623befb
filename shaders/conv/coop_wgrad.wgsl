#include "conv/coop_mma"
#include "conv/coop_wgrad_body"
