/*
 * dma_board.c - fills a DMA device configuration from a parsed board description (board/board.h):
 * the banks (base, size, bandwidth, name), the channel count, the PCIe link bandwidth and the
 * per-descriptor latency, so the emulated engine charges what the card's dts says
 * (docs/architecture.md, emulated card and timing model). Data flow: board/<card>.dts ->
 * board_load -> struct board_desc -> here -> struct dma_config -> dma_dev_open.
 */
#include <errno.h>
#include <string.h>

#include "board.h"
#include "dma.h"
#include "dma_board.h"

int dma_config_from_board(const struct board_desc *b, struct dma_bank *banks, unsigned max_banks,
			  struct dma_config *cfg)
{
	if (!b || !banks || !cfg)
		return -EINVAL;
	if (b->n_banks == 0 || b->n_dma == 0 || b->pcie_bw_mbps == 0)
		return -EINVAL;
	if (b->n_banks > max_banks)
		return -ENOSPC;
	unsigned h2c = 0, c2h = 0;
	uint32_t lat = 0;
	for (uint32_t i = 0; i < b->n_dma; i++) {
		if (b->dma[i].to_card)
			h2c++;
		else
			c2h++;
		if (b->dma[i].latency_ns > lat)
			lat = b->dma[i].latency_ns;
	}
	unsigned nch = h2c > c2h ? h2c : c2h;
	if (nch > DMA_MAX_CHANNELS)
		nch = DMA_MAX_CHANNELS;
	for (uint32_t i = 0; i < b->n_banks; i++) {
		banks[i] = (struct dma_bank){
		    .base = b->bank[i].base,
		    .size = b->bank[i].size,
		    .bw = (double)b->bank[i].bw_mbps * 1e6,
		    .mem_group = -1,
		    .name = b->bank[i].name,
		};
	}
	memset(cfg, 0, sizeof(*cfg));
	cfg->banks = banks;
	cfg->n_banks = b->n_banks;
	cfg->n_channels = nch;
	cfg->link_bw = (double)b->pcie_bw_mbps * 1e6;
	cfg->desc_latency_ns = lat ? (int64_t)lat : -1;
	return 0;
}
