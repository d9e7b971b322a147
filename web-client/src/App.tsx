import { BrowserRouter, Route, Routes } from "react-router";
import { Layout } from "./components/Layout";
import { Empty, PageHeading } from "./components/States";
import { CampaignPage, CampaignsPage, NewCampaignPage } from "./pages/CampaignsPage";
import { LoginPage } from "./pages/LoginPage";
import { ModelsPage } from "./pages/ModelsPage";
import { OverviewPage } from "./pages/OverviewPage";
import { PlayerPage, PlayersPage } from "./pages/PlayerPage";
import { SegmentPage } from "./pages/SegmentPage";
import { SegmentsPage } from "./pages/SegmentsPage";

function NotFoundPage() {
  return (
    <>
      <PageHeading title="No such page" />
      <Empty>This address is not a page of the dashboard.</Empty>
    </>
  );
}

/** Every page has its own URL, filters included, so a view can be shared. */
export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route element={<Layout />}>
          <Route index element={<OverviewPage />} />
          <Route path="segments" element={<SegmentsPage />} />
          <Route path="segments/:clusterId" element={<SegmentPage />} />
          <Route path="players" element={<PlayersPage />} />
          <Route path="players/:userId" element={<PlayerPage />} />
          <Route path="campaigns" element={<CampaignsPage />} />
          <Route path="campaigns/new" element={<NewCampaignPage />} />
          <Route path="campaigns/:campaignId" element={<CampaignPage />} />
          <Route path="models" element={<ModelsPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
